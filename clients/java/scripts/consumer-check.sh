#!/usr/bin/env bash
# Installs the Java client exactly as clients/java/README.md says and uses it from a Maven
# project outside the repository: runs the README's install block (no gateway running, so the
# build must not need one), creates a project in a temporary directory with the README's
# dependency block and its Main.java, compiles it, and runs it against a live gateway
# (scripts/with-gateway.sh). Passes when Main prints a score with a request id and an error
# with its reason and request id. The README blocks are the ones after the
# <!-- consumer:install|dependency|main --> markers.
set -euo pipefail
root=$(cd "$(dirname "$0")/../../.." && pwd)
readme=$root/clients/java/README.md
mvn_q=(mvn -B -q -Dstyle.color=never)

# block NAME: the fenced block after <!-- consumer:NAME --> in the README.
block() {
  awk -v marker="<!-- consumer:$1 -->" '
    $0 == marker { found = 1; next }
    found && /^```/ { if (inside) exit; inside = 1; next }
    inside { print }' "$readme"
}
for name in install dependency main; do
  [ -n "$(block "$name")" ] || { echo "consumer-check: no consumer:$name block in $readme" >&2; exit 1; }
done

echo "consumer-check: the README's install, from the repository root, no gateway running:"
block install | sed 's/^/  /'
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
if ! (cd "$root" && bash -euo pipefail -c "$(block install)") >"$dir/install.log" 2>&1; then
  cat "$dir/install.log" >&2
  echo "consumer-check: the README's install failed" >&2
  exit 1
fi
# Maven colours some lines even when told not to: compare text without ANSI escapes.
plain() { sed 's/\x1b\[[0-9;]*m//g'; }
plain <"$dir/install.log" | grep -E 'Tests run:.*Fail' | tail -n1 | sed 's/^/consumer-check: install: /'
rm "$dir/install.log"
mkdir -p "$dir/src/main/java"
block main >"$dir/src/main/java/Main.java"
# A minimal application pom around the README's dependency block; plugin versions pinned.
cat >"$dir/pom.xml" <<POM
<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>example</groupId>
  <artifactId>liveness-consumer</artifactId>
  <version>1</version>
  <properties>
    <maven.compiler.release>17</maven.compiler.release>
    <project.build.sourceEncoding>UTF-8</project.build.sourceEncoding>
  </properties>
  <dependencies>
$(block dependency)
  </dependencies>
  <build>
    <plugins>
      <plugin>
        <groupId>org.apache.maven.plugins</groupId>
        <artifactId>maven-compiler-plugin</artifactId>
        <version>3.16.0</version>
      </plugin>
      <plugin>
        <groupId>org.apache.maven.plugins</groupId>
        <artifactId>maven-resources-plugin</artifactId>
        <version>3.5.0</version>
      </plugin>
      <plugin>
        <groupId>org.codehaus.mojo</groupId>
        <artifactId>exec-maven-plugin</artifactId>
        <version>3.6.4</version>
        <configuration><mainClass>Main</mainClass></configuration>
      </plugin>
    </plugins>
  </build>
</project>
POM
(cd "$dir" && "${mvn_q[@]}" compile)
out=$(cd "$dir" && "$root/scripts/with-gateway.sh" "${mvn_q[@]}" exec:java | plain)
printf '%s\n' "$out" | sed 's/^/consumer-check: Main: /'
printf '%s\n' "$out" | grep -Eq '^0\.995 VERDICT_HACK [^ ]+$' ||
  { echo "consumer-check: no score with a request id" >&2; exit 1; }
printf '%s\n' "$out" | grep -Eq '^RESOURCE_EXHAUSTED OUT_OF_QUOTA [^ ]+$' ||
  { echo "consumer-check: no error with its reason and request id" >&2; exit 1; }
echo "consumer-check: a project outside the repository installed, built and called the gateway"
