#!/usr/bin/env bash
# Learns the same mixed corpus with `rampart discover learn` and with the
# npm package har-to-openapi (which infers OpenAPI from HAR files) and
# prints the paths each one finds. Needs node and npm; run from the
# repository root. Everything it writes goes to a temporary directory.
set -euo pipefail
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
go run bench/discovery/corpus.go "$dir"
(cd "$dir" && npm install --silent --no-audit --no-fund har-to-openapi@3.0.1 >/dev/null)
cat > "$dir/run.mjs" <<'JS'
import { generateSpec } from "har-to-openapi";
import fs from "fs";
const har = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const { spec } = await generateSpec(har, { relaxedMethods: true, attemptToParameterizeUrl: true, dropPathsWithoutSuccessfulResponse: true });
for (const p of Object.keys(spec.paths).sort()) console.log(p);
JS
echo "== rampart discover learn"
go run ./cmd/rampart discover learn --from "$dir/recorded.jsonl" 2>/dev/null | grep -o '^    "/[^"]*"' | tr -d ' "' | sort
echo "== har-to-openapi 3.0.1 ($(cd "$dir" && node run.mjs "$dir/corpus.har" | wc -l) paths; first 12)"
(cd "$dir" && node run.mjs "$dir/corpus.har" | head -12)
