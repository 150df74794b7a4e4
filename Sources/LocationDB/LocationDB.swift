// Module LocationDB: work in progress.
