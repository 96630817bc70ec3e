"""Video-generation providers: the vendor's wire format (JSON bodies, status words, rate-limit
headers) is parsed here into domain values, and never leaks past this package.
"""
