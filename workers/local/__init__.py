"""The local stack of `pokewatch up`: a supervisor of child processes and the embedded broker."""
