// Module Edge: work in progress.
