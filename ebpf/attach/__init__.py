"""Links: hanging loaded programs on kernel hooks. See the submodules; each link closes on
``close()``, on ``with`` exit and when its last fd goes away, so nothing outlives the process."""
