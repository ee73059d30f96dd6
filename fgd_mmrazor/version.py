"""Version of fgd_mmrazor."""
__version__ = '0.1.0'
