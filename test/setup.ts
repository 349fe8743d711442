// @peculiar/x509 v2 needs reflect-metadata loaded first (tests use it as an
// independent parser next to openssl).
import "reflect-metadata";
