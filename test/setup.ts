// @peculiar/x509 v2 needs reflect-metadata loaded first (tests use it as an
// independent parser next to openssl).
import "reflect-metadata";

// The daemons the tests start (nginx, apache2) live in /usr/sbin, which is
// not on a normal user's PATH on Debian: find them there too.
for (const dir of ["/usr/local/sbin", "/usr/sbin", "/sbin"]) {
  if (!(process.env.PATH ?? "").split(":").includes(dir)) process.env.PATH = `${process.env.PATH ?? ""}:${dir}`;
}
