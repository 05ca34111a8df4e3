# Reference L1 image (filled in by the guest work).
l1-image:
	@echo "l1-image: not built yet" >&2; exit 1
