"""Choosing what to annotate next: frame selectors, their diversity features, annotation-type policies."""
