// ConfigFile: filled in by the configuration work (see Package.swift).
