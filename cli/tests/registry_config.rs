//! Per-registry settings (`config.toml`, `certs.d`) against real
//! registries on 127.0.0.1: mirrors tried in order before the origin
//! (docker.io's too), a TLS registry with a private CA reached with a
//! certs.d CA and refused without it, client-certificate auth.

use kiln_tests::{private_ca, Kiln, Registry, RegistryTls};
use std::fs;

fn machine() -> Kiln {
    Kiln::new(env!("CARGO_BIN_EXE_kiln"))
}

/// Writes the machine's `config.toml` (its `$XDG_CONFIG_HOME/kiln/`).
fn configure(k: &Kiln, toml: &str) {
    k.write("config/kiln/config.toml", toml);
}

#[test]
fn mirrors_answer_pulls_in_order_and_the_origin_is_the_fallback() {
    let empty = Registry::start(None);
    let mirror = Registry::start(None);
    let origin = Registry::start(None);
    let seed = machine();
    seed.import_busybox("busybox", &[]);
    seed.ok(&[
        "push",
        "busybox",
        &format!("{}/library/mirrored:1", mirror.host()),
    ]);
    seed.ok(&[
        "push",
        "busybox",
        &format!("{}/team/only-at-origin:1", origin.host()),
    ]);

    // docker.io is not reachable from here: only a mirror can answer.
    let k = machine();
    configure(
        &k,
        &format!(
            "[registry.\"docker.io\"]\nmirrors = [\"{}\", \"http://{}/\"]\n\n\
             [registry.\"{}\"]\nmirrors = [\"{}\"]\n",
            empty.host(),
            mirror.host(),
            origin.host(),
            empty.host()
        ),
    );
    k.write_ctx(
        "Dockerfile",
        "FROM docker.io/library/mirrored:1\nRUN echo via-mirror > /m\n",
    );
    k.build(&["-t", "app"]);
    assert_eq!(k.run_rm(&["app", "cat", "/m"]), "via-mirror\n");
    // The image keeps its docker.io name.
    assert!(k
        .ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"])
        .contains("mirrored:1"));
    // A mirror that lacks the image: the origin answers.
    k.ok(&["pull", &format!("{}/team/only-at-origin:1", origin.host())]);
    // Without the mirror, docker.io is asked and fails: the mirror did it.
    let bare = machine();
    let (code, _, _) = bare.out(&["pull", "docker.io/library/mirrored:1"]).parts();
    assert_ne!(code, 0);
}

#[test]
fn a_private_ca_from_certs_d_and_client_certificates() {
    let k = machine();
    let pki = k.path("pki");
    private_ca(&pki);
    let tls = Registry::start_tls(&RegistryTls {
        cert: pki.join("server.crt"),
        key: pki.join("server.key"),
        client_ca: None,
    });
    let mtls = Registry::start_tls(&RegistryTls {
        cert: pki.join("server.crt"),
        key: pki.join("server.key"),
        client_ca: Some(pki.join("ca.crt")),
    });
    k.import_busybox("busybox", &[]);
    let target = format!("{}/tls/busybox:1", tls.host());
    // Without the CA: refused (the certificate is not trusted).
    let (code, _, err) = k.out(&["push", "busybox", &target]).parts();
    assert_ne!(code, 0, "pushed without trusting the CA");
    assert!(err.contains(&tls.host()), "{err}");
    // certs.d/HOST/ca.crt: trusted for that host.
    let certs = |host: &str, files: &[(&str, &str)]| {
        for (from, to) in files {
            let dest = k.path(&format!("config/kiln/certs.d/{host}/{to}"));
            fs::create_dir_all(dest.parent().unwrap()).unwrap();
            fs::copy(pki.join(from), dest).unwrap();
        }
    };
    certs(&tls.host(), &[("ca.crt", "ca.crt")]);
    k.ok(&["push", "busybox", &target]);
    let other = machine();
    other.write(
        "config/kiln/config.toml",
        format!(
            "[registry.\"{}\"]\nca = \"{}\"\n",
            tls.host(),
            pki.join("ca.crt").display()
        ),
    );
    other.ok(&["pull", &target]);
    // Client certificates: refused without one, accepted with it.
    let m_target = format!("{}/tls/busybox:1", mtls.host());
    certs(&mtls.host(), &[("ca.crt", "ca.crt")]);
    let (code, _, _) = k.out(&["push", "busybox", &m_target]).parts();
    assert_ne!(code, 0, "pushed without a client certificate");
    // A certificate TLS cannot use is an error naming it, before any
    // connection.
    certs(
        &mtls.host(),
        &[
            ("client-v1.cert", "client.cert"),
            ("client.key", "client.key"),
        ],
    );
    let err = k.fails(&["push", "busybox", &m_target]);
    assert!(
        err.contains("client.cert with") && err.contains("not a usable client certificate"),
        "{err}"
    );
    certs(
        &mtls.host(),
        &[("client.cert", "client.cert"), ("client.key", "client.key")],
    );
    k.ok(&["push", "busybox", &m_target]);
    k.write_ctx(
        "Dockerfile",
        format!("FROM {m_target}\nRUN echo mtls > /m\n"),
    );
    k.build(&["--pull", "-t", "from-mtls"]);
    assert_eq!(k.run_rm(&["from-mtls", "cat", "/m"]), "mtls\n");
}

#[test]
fn a_bad_config_file_is_an_error_naming_it() {
    let k = machine();
    configure(&k, "[registry.\"x\"]\nmirror = [\"typo\"]\n");
    let err = k.fails(&["pull", "127.0.0.1:1/none"]);
    assert!(err.contains("config/kiln/config.toml"), "{err}");
    assert!(err.contains("mirror"), "{err}");
}
