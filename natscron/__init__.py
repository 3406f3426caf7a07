"""natscron: the command line, the demo and the embedded dev stack, on top of the
services (`natscron_ticker`, `natscron_runner`, `natscron_recorder`) and their
contract (`natscron_shared`)."""
