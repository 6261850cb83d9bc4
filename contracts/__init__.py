"""Message models, stream names and settings shared by the gateway and the workers."""
