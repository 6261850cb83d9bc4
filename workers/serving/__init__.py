"""The serving side: model and decision workers, the embedded broker, `pokewatch up`."""
