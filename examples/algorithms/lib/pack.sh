# lib/pack.sh: what the Node.js examples' pack.sh scripts share, sourced
# by them. pack_tree OUT FILE... copies the files (paths relative to the
# package) into a staging tree, checks that it runs (`node server.js
# --check` loads the models and answers once) unless PACK_CHECK=0, and
# writes OUT, a reproducible tar.gz of the tree with manifest.json at its
# root.
pack_tree() {
	local out=$1
	shift
	pack_stage=$(mktemp -d)
	trap 'rm -rf "$pack_stage"' EXIT
	local stage=$pack_stage f
	for f in "$@"; do
		[ -f "$f" ] || { echo "pack.sh: $f is missing (npm ci --prefix $PWD)" >&2; exit 1; }
		mkdir -p "$stage/$(dirname "$f")"
		cp "$f" "$stage/$f"
	done
	if [ "${PACK_CHECK:-1}" != 0 ]; then
		(cd "$stage" && node server.js --check >/dev/null) || { echo "pack.sh: the packed tree does not run" >&2; exit 1; }
	fi
	mkdir -p "$(dirname "$out")"
	(cd "$stage" && ls -A) | tar -C "$stage" --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -cf - -T - | gzip -9n >"$out.tmp"
	mv "$out.tmp" "$out"
	echo "$out: $(wc -c <"$out") bytes"
}
