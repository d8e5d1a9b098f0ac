"""Services: the only code that changes state. One module per concern."""
