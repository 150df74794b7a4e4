// Module Tunnel: work in progress.
