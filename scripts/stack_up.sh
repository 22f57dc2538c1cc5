# Sourced by the measurement scripts: `stack_up RUN_DIR [MODEL_DIR]` starts the local stack (on
# MODEL_DIR, or on the shipped demo model when it is empty or not given) on free loopback ports
# in the background, waits until the gateway serves, sets ADDRESS, and stops the stack when the
# calling script exits.
stack_up() {
  local run_dir=$1 model=()
  [ -n "${2:-}" ] && model=(--model-dir "$2")
  local ports
  # One --<setting> PORT pair per port setting of the stack, the gateway's first.
  ports=$(.venv/bin/python -c "from tagllm.stack.ports import free_ports
print(' '.join(f'--{k.replace(\"_\", \"-\")} {v}' for k, v in free_ports().items()))")
  mkdir -p "$run_dir"
  # shellcheck disable=SC2086  # the flags split on purpose
  .venv/bin/tagllm up "${model[@]}" --run-dir "$run_dir" $ports >"$run_dir/up.log" 2>&1 &
  STACK_PID=$!
  trap 'kill -INT $STACK_PID; wait $STACK_PID' EXIT
  ADDRESS=127.0.0.1:$(echo "$ports" | cut -d' ' -f2)
  for _ in $(seq 300); do
    .venv/bin/tagllm health "$ADDRESS" >/dev/null 2>&1 && return 0
    kill -0 "$STACK_PID" 2>/dev/null || break # the stack exited: no use waiting
    sleep 2
  done
  echo "the stack did not come up; see $run_dir/up.log" >&2
  return 1
}
