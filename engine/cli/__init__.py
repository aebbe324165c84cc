"""`s2f`: the parser and one module per command; the only package that reaches up a layer."""
