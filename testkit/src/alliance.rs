//! An alliance for tests: a CA and enrolled nodes, made through the real CLI as county IT and
//! the facilities would (`ca init`; per node `init`, `enroll request`, `ca issue`,
//! `enroll install`).

use std::path::{Path, PathBuf};

use crate::cli::ok;

/// An alliance CA in a directory, with node directories beside it.
#[derive(Debug)]
pub struct Alliance {
    /// The CA directory.
    pub ca: PathBuf,
    /// Where node directories go.
    pub root: PathBuf,
}

impl Alliance {
    /// `yilian ca init` in `root/ca`, for an alliance called `name`.
    pub fn new(root: &Path, name: &str) -> Alliance {
        let ca = root.join("ca");
        ok(&ca, &["ca", "init", "--alliance", name]);
        Alliance {
            ca,
            root: root.to_path_buf(),
        }
    }

    /// Initialises node `code` in `root/<code in lower case>`, listening on an ephemeral
    /// loopback port, and enrolls it: `kind` and `roles` as the CLI takes them
    /// (`county-hospital`, `township-center`, ...; `pharmacy,qc` or empty for none). Returns
    /// its data directory; the node is not started.
    pub fn node(&self, code: &str, kind: &str, roles: &str) -> PathBuf {
        let dir = self.root.join(code.to_lowercase());
        ok(
            &dir,
            &[
                "init",
                "--facility",
                code,
                "--name",
                &format!("{code} facility"),
                "--kind",
                kind,
                "--listen",
                "127.0.0.1:0",
            ],
        );
        let req = self.root.join(format!("{code}.req"));
        let bundle = self.root.join(format!("{code}.bundle"));
        let path = |p: &Path| p.to_str().expect("a UTF-8 path").to_string();
        ok(&dir, &["enroll", "request", "--out", &path(&req)]);
        let (ca, req, out) = (path(&self.ca), path(&req), path(&bundle));
        let mut args = vec!["ca", "issue", "--ca", &ca, "--request", &req, "--out", &out];
        if !roles.is_empty() {
            args.extend(["--roles", roles]);
        }
        ok(&dir, &args);
        ok(&dir, &["enroll", "install", &out]);
        dir
    }
}
