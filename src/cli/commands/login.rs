//! `login` and `logout`: a registry's credentials, checked and kept where the docker CLI keeps
//! them, or forgotten.

use std::io::{BufRead, IsTerminal, Read, Write};
use std::path::PathBuf;

use clap::Args;
use toolbox::config::Environment;
use toolbox::ops::login;
use toolbox::registry::Access;

use crate::cli::context::{self, Context};
use crate::cli::exit::{Failure, Status};
use crate::cli::printer;

/// `login REGISTRY [--username U] [--password-stdin] [--insecure] [--ca-cert FILE]`.
#[derive(Debug, Args)]
pub struct LoginArgs {
    /// The registry: HOST[:PORT] (docker.io for Docker Hub)
    #[arg(value_name = "REGISTRY")]
    registry: String,
    /// The user name [default: asked on the terminal]
    #[arg(short = 'u', long, value_name = "USER")]
    username: Option<String>,
    /// Read the password from stdin [default: asked on the terminal, never echoed]
    #[arg(long)]
    password_stdin: bool,
    /// Talk plain HTTP to the registry (always done for loopback addresses)
    #[arg(long)]
    insecure: bool,
    /// A PEM file of CA certificates to trust besides the system's
    #[arg(long, value_name = "FILE")]
    ca_cert: Option<PathBuf>,
}

/// `logout REGISTRY`.
#[derive(Debug, Args)]
pub struct LogoutArgs {
    /// The registry: HOST[:PORT] (docker.io for Docker Hub)
    #[arg(value_name = "REGISTRY")]
    registry: String,
}

/// The docker CLI's config folder: `$DOCKER_CONFIG`, else `~/.docker`.
fn config_dir() -> Result<PathBuf, Failure> {
    Environment::from_process()
        .docker_config_dir()
        .ok_or_else(|| {
            Failure::usage_text("neither DOCKER_CONFIG nor HOME is set: no docker config folder")
        })
}

/// What the terminal gives for `prompt` (echoed), on stderr.
fn ask(prompt: &str) -> Result<String, Failure> {
    eprint!("{prompt}");
    std::io::stderr().flush().ok();
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(Failure::Stdin)?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

/// Checks the credentials with the registry, then keeps them; says where.
pub fn login(args: &LoginArgs, _cx: &Context) -> Result<Status, Failure> {
    let terminal = std::io::stdin().is_terminal();
    if args.password_stdin && args.username.is_none() {
        return Err(Failure::usage_text(
            "--password-stdin needs --username: the password alone names no account",
        ));
    }
    let username = match &args.username {
        Some(u) => u.clone(),
        None if terminal => ask("Username: ")?,
        None => {
            return Err(Failure::usage_text(
                "no credentials: pass --username USER --password-stdin (stdin is not a \
                 terminal to ask on)",
            ));
        }
    };
    if username.is_empty() {
        return Err(Failure::usage_text("the user name is empty"));
    }
    let password = if args.password_stdin {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(Failure::Stdin)?;
        text.trim_end_matches(['\n', '\r']).to_string()
    } else if terminal {
        rpassword::prompt_password("Password: ").map_err(Failure::Stdin)?
    } else {
        return Err(Failure::usage_text(
            "no password: pass --password-stdin (stdin is not a terminal to ask on)",
        ));
    };
    if password.is_empty() {
        return Err(Failure::NoPassword);
    }
    let access = Access {
        insecure: args.insecure,
        ca_cert: args.ca_cert.clone(),
        credentials: None,
        docker_config: None,
        retries: 3,
        notify: Some(crate::cli::args::retry_notice()),
    };
    let dir = config_dir()?;
    let done = context::runtime()?.block_on(login::login(
        &args.registry,
        &username,
        &password,
        &access,
        &dir,
    ))?;
    printer::notice(&format!(
        "credentials for {} kept in {}",
        done.server, done.kept_in
    ));
    printer::text("Login Succeeded\n")?;
    Ok(Status::Success)
}

/// Forgets the registry's credentials.
pub fn logout(args: &LogoutArgs, _cx: &Context) -> Result<Status, Failure> {
    let (server, had) = login::logout(&args.registry, &config_dir()?)?;
    if had {
        printer::text(&format!("Removing login credentials for {server}\n"))?;
    } else {
        printer::text(&format!("Not logged in to {server}\n"))?;
    }
    Ok(Status::Success)
}
