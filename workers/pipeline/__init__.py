"""The batch pipeline: collect -> validate -> features -> context -> train -> evaluate -> price -> register."""
