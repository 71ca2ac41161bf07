"""The memcubed command line."""
