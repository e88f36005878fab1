#!/usr/bin/env bash
# Vendors the built Swagger UI bundle the API docs portal embeds: the npm
# package swagger-ui-dist at the pinned version, its bundle and stylesheet
# gzipped (served as they are to browsers that accept gzip, which is all
# of them), and its license. Run from the repository root; commit the
# result.
set -euo pipefail
version=5.36.0
dest=internal/apidocs/portal
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "swagger-ui-dist@$version" >/dev/null && tar xzf "swagger-ui-dist-$version.tgz")
gzip -9 -n -c "$tmp/package/swagger-ui-bundle.js" > "$dest/swagger-ui-bundle.js.gz"
gzip -9 -n -c "$tmp/package/swagger-ui.css" > "$dest/swagger-ui.css.gz"
cp "$tmp/package/LICENSE" "$dest/swagger-ui.LICENSE"
echo "swagger-ui-dist $version" > "$dest/VERSION"
