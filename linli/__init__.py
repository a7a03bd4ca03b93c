"""linli"""
