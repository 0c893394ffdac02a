.PHONY: demo test bench
demo:
	bash scripts/demo
test:
	bash scripts/test
bench:
	bash scripts/bench
