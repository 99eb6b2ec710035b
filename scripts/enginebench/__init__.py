"""enginebench: build, measure and compare LLM inference engines.

The package is deliberately small: `plan` turns a validated config into the artifacts to build,
`backends` holds one module per inference engine behind one interface, and the stage modules
(`snapshot`, `stages`, `bench`, `samples`, `report`) are written once against that interface.
Heavy libraries (torch, transformers, llama_cpp, ...) are imported inside the backend that needs them.
"""

__version__ = "0.1.0"
