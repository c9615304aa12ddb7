# Type stubs for the private native module stochmech._core (hand-written).
__version__: str

def window(l: int, gamma: float) -> float: ...
