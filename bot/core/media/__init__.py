"""Photos customers send with a report: checked, cleaned, stored, attached to tickets."""
