"""graphnn"""
