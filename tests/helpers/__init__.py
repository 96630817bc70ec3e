"""What tests share: fakes (hostile vendor and CDN, a toy provider, a Redis server), the CLI
runner, simulator fixtures and small builders. Test modules import from here, never from each
other; ``tests/conftest.py`` registers the fixture modules."""
