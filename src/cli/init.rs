//! `dnsseal init`: the PINs read, the project made by
//! [`crate::project::init`], and where everything went printed.

use super::args::InitArgs;
use super::context::Context;
use crate::pin;
use crate::project::init::{self, Layout, SoftHsm};

pub fn run(ctx: &Context, args: InitArgs) -> anyhow::Result<()> {
    let layout = Layout::new(&ctx.config_path)?;
    let token = if args.softhsm {
        layout.softhsm_conf()?;
        // Both PINs before anything is made.
        let so_pin = pin::read(args.so_pin_file.as_deref(), &pin::SO_PIN)?;
        let user_pin = ctx.user_pin()?;
        init::softhsm_token(
            &layout,
            SoftHsm {
                label: args.token_label.clone(),
                module: args.module.clone(),
                so_pin: so_pin.secret(),
                user_pin,
            },
        )?
    } else {
        init::hsm_token(
            args.profile.clone(),
            args.module.clone(),
            args.token_label.clone(),
            args.token_serial.clone(),
        )?
    };
    let cfg = init::create(&layout, token, ctx.now())?;
    if ctx.json {
        return ctx.print_json(&serde_json::json!({
            "config": layout.config,
            "keystore": layout.keystore,
            "audit_log": layout.audit_log,
            "token": cfg.token.selector.to_string(),
            "module": cfg.token.module,
        }));
    }
    if !ctx.quiet {
        outln!("dnsseal is set up in {}", layout.dir.display());
        outln!(
            "  config     {}",
            std::fs::canonicalize(&layout.config)
                .unwrap_or(layout.config.clone())
                .display()
        );
        outln!("  keystore   {}", layout.keystore.display());
        outln!("  audit log  {}", layout.audit_log.display());
        outln!(
            "  token      {} via {}",
            cfg.token.selector,
            cfg.token.module.display()
        );
        outln!("next: dnsseal keys create ZONE --role both --algorithm ECDSAP256SHA256");
    }
    Ok(())
}
