# Reads a docker-compose.yml; prints "service cpus memory" for every service, with "-" for a
# limit it lacks (only deploy.resources.limits counts, not reservations). A plain-text reader
# for the layout of our own compose files (two-space indentation, one key a line), shared by
# scripts/stack (cgroup limits) and scripts/submission (the budget check).
function val(s) {
    sub(/^[^:]*:[ \t]*/, "", s); sub(/[ \t]+#.*$/, "", s); gsub(/["' \t]/, "", s)
    return s
}
/^[^ \t#]/ { top = $0; svc = ""; next }
top ~ /^services:/ && /^  [A-Za-z0-9_.-]+:[ \t]*$/ {
    svc = $1; sub(/:$/, "", svc); lim = 0; seen[svc] = 1; order[++n] = svc; next
}
svc != "" && /^[ \t]+limits:[ \t]*$/ { lim = 1; next }
svc != "" && /^[ \t]+[A-Za-z0-9_.-]+:[ \t]*$/ { lim = 0 }
svc != "" && lim && /^[ \t]+cpus:/ { cpus[svc] = val($0) }
svc != "" && lim && /^[ \t]+memory:/ { mem[svc] = val($0) }
END {
    for (i = 1; i <= n; i++) {
        s = order[i]
        print s, (s in cpus ? cpus[s] : "-"), (s in mem ? mem[s] : "-")
    }
}
