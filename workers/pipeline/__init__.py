"""The batch pipeline: collect -> validate -> features -> train -> evaluate -> register."""
