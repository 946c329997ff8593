"""Field evidence: per-service checklists a cleaner ticks on a job, and before/after photos
uploaded straight to storage and cleaned (type sniffed, EXIF/GPS stripped, thumbnail) on confirm."""
