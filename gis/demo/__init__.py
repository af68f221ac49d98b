"""The synthetic demo city: committed district and project layers, and a deterministic parcel generator."""
