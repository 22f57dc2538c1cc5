# Sourced by the measurement scripts: `stack_up RUN_DIR [tagllm up flags...]` starts the local
# stack on free loopback ports in the background, waits until the gateway serves, sets ADDRESS,
# and stops the stack when the calling script exits.
stack_up() {
  local run_dir=$1
  shift
  local ports
  ports=$(.venv/bin/python -c "from tagllm.stack.ports import free_port; print(*(free_port() for _ in range(9)))")
  read -r GW RF MT MH GM RM TH TG TM <<<"$ports"
  mkdir -p "$run_dir"
  .venv/bin/tagllm up "$@" --run-dir "$run_dir" --gateway-port "$GW" --refiner-port "$RF" \
    --metrics-port "$MT" --metrics-http-port "$MH" --gateway-metrics-port "$GM" \
    --refiner-metrics-port "$RM" --triton-http-port "$TH" --triton-grpc-port "$TG" \
    --triton-metrics-port "$TM" >"$run_dir/up.log" 2>&1 &
  STACK_PID=$!
  trap 'kill -INT $STACK_PID; wait $STACK_PID' EXIT
  ADDRESS=127.0.0.1:$GW
  for _ in $(seq 300); do .venv/bin/tagllm health "$ADDRESS" >/dev/null 2>&1 && return 0; sleep 2; done
  echo "the stack did not come up; see $run_dir/up.log" >&2
  return 1
}
