"""Demo: data preparation and reporting for the trees experiment."""
