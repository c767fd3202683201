"""Files a user writes (run configs, seed-style dirs, profiles, topologies) → validated objects."""
