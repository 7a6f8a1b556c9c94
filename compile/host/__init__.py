"""The host runtime of a BinaryHPE frame for the Zynq's ARM (C sources in runtime/), its builds and the Cortex-A53
time model (docs/host.md)."""
