# Lists the tests of a `deno test` log as "<ms>\t<file>: <test name>", for sorting: the
# sequential layout ("running N tests from FILE", then the file's tests) and the --parallel
# one ("./FILE => name ... ok (time)") alike.
/^running [0-9]+ tests? from / { file = $NF; sub(/^\.\//, "", file); next }
/ \.\.\. .*(ok|FAILED|ignored) \([0-9hms]+\)$/ {
  d = $NF; gsub(/[()]/, "", d); ms = 0
  while (match(d, /^[0-9]+(ms|h|m|s)/)) {
    tok = substr(d, 1, RLENGTH); d = substr(d, RLENGTH + 1)
    n = tok + 0; u = tok; sub(/^[0-9]+/, "", u)
    ms += (u == "ms") ? n : (u == "s") ? n * 1000 : (u == "m") ? n * 60000 : n * 3600000
  }
  # A step line reads "test ... step ... ok (t)": shown as "test > step".
  name = $0; sub(/ \.\.\. (ok|FAILED|ignored) \([0-9hms]+\)$/, "", name); sub(/^ +/, "", name)
  gsub(/ \.\.\. /, " > ", name)
  f = file
  if (match(name, /^\.\/[^ ]+ => /)) {
    f = substr(name, 3, RLENGTH - 6); name = substr(name, RLENGTH + 1)
  }
  printf "%d\t%s: %s\n", ms, f, name
}
