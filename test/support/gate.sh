#!/bin/sh
# A gated fake command (as wireit's test rig): says it started, waits until the test opens its gate, says it ended.
#   sh gate.sh DIR NAME
# DIR/log gets "start NAME" and "end NAME" lines (appends of one short line each, so never interleaved);
# DIR/NAME.started appears when it starts; it returns once DIR/NAME.open exists. A gate the test never opens makes
# it fail after PIPE_GATE_LIMIT_S seconds (default 120), so a broken test leaves no process behind for long.
dir=$1
name=$2
echo "start $name" >> "$dir/log"
: > "$dir/$name.started"
limit=$(( ${PIPE_GATE_LIMIT_S:-120} * 50 ))
i=0
while [ ! -e "$dir/$name.open" ]; do
  i=$((i + 1))
  if [ "$i" -gt "$limit" ]; then
    echo "gate $name was never opened ($dir)" >&2
    exit 97
  fi
  sleep 0.02
done
echo "end $name" >> "$dir/log"
