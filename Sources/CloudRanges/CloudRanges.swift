// Module CloudRanges: work in progress.
