#!/usr/bin/env bash
# Builds an Elastic Beanstalk source bundle (zip) for Gazua PAY with your image in it.
#
#   deploy/elastic-beanstalk/make-bundle.sh image   IMAGE_URI [OUT.zip]   # Dockerrun.aws.json v1, host nginx
#   deploy/elastic-beanstalk/make-bundle.sh compose IMAGE_URI [OUT.zip]   # docker-compose.yml, no nginx
#
# IMAGE_URI is what you pushed, e.g. 123456789012.dkr.ecr.ap-northeast-2.amazonaws.com/gazua-pay:0.1.0.
# Upload the zip in the console, or deploy it with `eb deploy` (see README.md here). Needs python3.
set -euo pipefail

variant="${1:-}"
image="${2:-}"
case "$variant" in image | compose) ;; *)
    echo "usage: $0 image|compose IMAGE_URI [OUT.zip]" >&2
    exit 2
    ;;
esac
[ -n "$image" ] || { echo "error: IMAGE_URI missing (expected e.g. <account>.dkr.ecr.<region>.amazonaws.com/gazua-pay:<tag>)" >&2; exit 2; }
here="$(cd "$(dirname "$0")" && pwd)"
out="$(realpath -m "${3:-gazua-pay-eb-$variant.zip}")"

stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
cp -R "$here/$variant/." "$stage/"
if [ "$variant" = image ]; then
    python3 - "$stage/Dockerrun.aws.json" "$image" <<'PY'
import json, sys
path, image = sys.argv[1], sys.argv[2]
doc = json.load(open(path))
doc["Image"]["Name"] = image
open(path, "w").write(json.dumps(doc, indent=2) + "\n")
PY
else
    sed -i "s|^    image: .*|    image: $image|" "$stage/docker-compose.yml"
fi
rm -f "$out"
# Dot-folders (.ebextensions, .platform) must be inside the zip, at its root.
(cd "$stage" && python3 - "$out" <<'PY'
import os, sys, zipfile
with zipfile.ZipFile(sys.argv[1], "w", zipfile.ZIP_DEFLATED) as z:
    for root, _dirs, files in os.walk("."):
        for f in files:
            path = os.path.join(root, f)
            z.write(path, os.path.relpath(path, "."))
PY
)
echo "$out:"
python3 -c 'import sys, zipfile; [print("  " + n) for n in zipfile.ZipFile(sys.argv[1]).namelist()]' "$out"
