#!/usr/bin/env bash
# Server CPU per request of the member's profile read (GET /api/v1/me) and
# privacy-centre page (GET /account/privacy), for two builds of Steward side
# by side: a baseline revision and the working tree. Each build serves its
# own fresh SQLite data directory with the embedded example policy, holding
# one verified member; wrk (a light C generator, so the client does not eat
# the CPU being measured) loads one route of one build at a time, the builds
# taking turns, and the server's CPU is read from /proc before and after.
#
# usage: bench/cpu_per_request.sh BASE_REV [TURNS] [SECONDS_PER_TURN]
# needs: go, git, wrk, curl, python3
set -euo pipefail

base=${1:?usage: bench/cpu_per_request.sh BASE_REV [TURNS] [SECONDS]}
turns=${2:-3}
secs=${3:-10}
root=$(git rev-parse --show-toplevel)
work=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	git -C "$root" worktree remove --force "$work/base-src" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

git -C "$root" worktree add -q --detach "$work/base-src" "$base"
(cd "$work/base-src" && go build -o "$work/steward-base" ./cmd/steward)
(cd "$root" && go build -o "$work/steward-head" ./cmd/steward)

password='tangerine orbit lantern 42'
tick=$(getconf CLK_TCK)

# start NAME PORT: a server with an admin and a verified member; prints
# nothing, leaves the member's session token in $work/NAME.token.
start() {
	local name=$1 port=$2 dir="$work/data-$1" url="http://127.0.0.1:$2"
	mkdir -p "$dir"
	printf '%s\n' "$password" | "$work/steward-$name" users create-staff --data-dir "$dir" --dev \
		--email admin@example.org --role admin --password-stdin >/dev/null
	"$work/steward-$name" serve --data-dir "$dir" --addr "127.0.0.1:$port" --base-url "$url" >"$work/$name.log" 2>&1 &
	pids+=($!)
	echo $! >"$work/$name.pid"
	for _ in $(seq 50); do curl -fs "$url/healthz" >/dev/null 2>&1 && break; sleep 0.2; done
	curl -fs -X POST "$url/api/v1/accounts" -H 'Content-Type: application/json' \
		-d "{\"name\":\"Bench Member\",\"email\":\"member@example.org\",\"password\":\"$password\",\"age_confirmed\":true}" >/dev/null
	local admin
	admin=$(login "$url" admin@example.org)
	# The verification mail is held in the outbox in development.
	local id token
	id=$(curl -fs -H "Cookie: steward_session=$admin" "$url/admin/outbox" | grep -o '/admin/outbox/[A-Za-z0-9_]*' | head -1)
	token=$(curl -fs -H "Cookie: steward_session=$admin" "$url$id" | grep -o 'verify-email?token=[A-Za-z0-9_%=-]*' | head -1 | sed 's/.*token=//; s/%3D/=/g')
	curl -fs -X POST "$url/api/v1/email-verifications/confirm" -H 'Content-Type: application/json' -d "{\"token\":\"$token\"}" >/dev/null
	login "$url" member@example.org >"$work/$name.token"
}

login() {
	curl -fs -X POST "$1/api/v1/sessions" -H 'Content-Type: application/json' \
		-d "{\"email\":\"$2\",\"password\":\"$password\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])'
}

cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# turn NAME PORT PATH: one wrk run; appends "requests ticks" to a file.
turn() {
	local name=$1 port=$2 path=$3 pid tok out before after reqs
	pid=$(cat "$work/$name.pid")
	tok=$(cat "$work/$name.token")
	before=$(cpu "$pid")
	out=$(wrk -t1 -c8 -d"${secs}s" -H "Authorization: Bearer $tok" -H "Cookie: steward_session=$tok" "http://127.0.0.1:$port$path")
	after=$(cpu "$pid")
	reqs=$(echo "$out" | awk '/requests in/ {print $1}')
	if echo "$out" | grep -q 'Non-2xx'; then
		echo "$name $path answered errors:" >&2
		echo "$out" >&2
		exit 1
	fi
	echo "$reqs $((after - before))" >>"$work/$name${path//\//_}.runs"
}

start base 18091
start head 18092
for path in /api/v1/me /account/privacy; do
	# warm up both
	secs_saved=$secs
	secs=2
	turn base 18091 "$path"
	turn head 18092 "$path"
	secs=$secs_saved
	rm -f "$work"/*"${path//\//_}".runs
	for _ in $(seq "$turns"); do
		turn base 18091 "$path"
		turn head 18092 "$path"
	done
	for name in base head; do
		awk -v tick="$tick" -v name="$name" -v path="$path" -v secs="$secs" '
			{ r += $1; t += $2; n++; per = $2 / tick / $1 * 1e6; list = list sprintf(" %.1f", per) }
			END { printf "%-4s %-16s %8.0f req/s  %6.1f µs CPU/request (turns:%s)\n", name, path, r / (n * secs), t / tick / r * 1e6, list }' \
			"$work/$name${path//\//_}.runs"
	done
done
