// HTTPDownload: filled in by the downloads work (see Package.swift).
