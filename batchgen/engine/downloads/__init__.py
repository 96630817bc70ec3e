"""Fetching a finished video: public-only addresses (``addresses``), the resumable, bounded
transfer into a ``.part`` file (``fetch``), the disk's free space (``disk``) and the check
that what arrived is a video (``verify``).

Knows no vendor and no store: the download stage above hands it a URL and a path.
"""
