// Module Game: work in progress.
