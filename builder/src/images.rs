//! Base images for builds: the store first, then the registry (`FROM`
//! pulls on demand; `--pull` always asks the registry).

use kiln_frontend_dockerfile::lower::{ImageError, ImageSource, ResolvedImage};
use kiln_store::{Reference, Store};

/// The store as the frontend's image source; images it lacks are pulled
/// when a registry client is given.
pub struct StoreImages<'a> {
    pub store: &'a Store,
    /// None: offline, the store only.
    pub registry: Option<&'a kiln_registry::Client>,
    /// `--pull`: resolve every image against its registry again.
    pub always_pull: bool,
    /// Told of each image before it is pulled.
    pub on_pull: Option<&'a (dyn Fn(&Reference) + Sync)>,
}

impl<'a> StoreImages<'a> {
    /// The image `reference` names for `platform`: from the store, else
    /// pulled (a registry's index gives each platform its manifest).
    pub fn image(
        &self,
        reference: &str,
        platform: &kiln_registry::Platform,
    ) -> Result<kiln_store::Image, ImageError> {
        self.image_for(reference, platform, false)
    }

    /// As [`StoreImages::image`]; with `any_single_platform` (a build's
    /// base, as BuildKit takes it) a single-platform image for another
    /// platform is the answer when nothing for `platform` is found: the
    /// registry's, else the store's. The lowering warns about it.
    fn image_for(
        &self,
        reference: &str,
        platform: &kiln_registry::Platform,
        any_single_platform: bool,
    ) -> Result<kiln_store::Image, ImageError> {
        let wanted = platform.to_string();
        let local = if self.always_pull {
            None
        } else {
            match self.store.resolve_for(reference, &wanted) {
                Ok(image) => return Ok(image),
                Err(e) => Some(e),
            }
        };
        let local_other = match &local {
            Some(kiln_store::StoreError::WrongPlatform { available, .. })
                if any_single_platform && available.len() == 1 =>
            {
                self.store.resolve(reference).ok()
            }
            _ => None,
        };
        let hint = "(kiln pull, kiln load or kiln import put images in the local store)";
        let parsed = Reference::parse(reference);
        match (self.registry, parsed) {
            (Some(client), Ok(r)) => {
                if let Some(tell) = self.on_pull {
                    tell(&r);
                }
                let pulled = if any_single_platform {
                    client.pull_base(self.store, &r, platform)
                } else {
                    client.pull(self.store, &r, platform)
                };
                if let (Err(_), Some(image)) = (&pulled, local_other) {
                    return Ok(image);
                }
                pulled.map(|p| p.image).map_err(|e| {
                    ImageError(match &local {
                        Some(w @ kiln_store::StoreError::WrongPlatform { .. }) => {
                            format!("{w} in the local store, and pulling it failed: {e}")
                        }
                        Some(_) => format!("{e}; it is not in the local store either {hint}"),
                        None => e.to_string(),
                    })
                })
            }
            (_, Err(e)) => Err(ImageError(format!("{reference}: {e}"))),
            (None, Ok(_)) => match local_other {
                Some(image) => Ok(image),
                None => Err(ImageError(format!(
                    "{reference}: {} {hint}",
                    local.map_or("not in the store".to_string(), |e| e.to_string())
                ))),
            },
        }
    }
}

impl ImageSource for StoreImages<'_> {
    fn resolve(
        &self,
        reference: &str,
        platform: &kiln_frontend_dockerfile::plan::Platform,
    ) -> Result<ResolvedImage, ImageError> {
        let platform = kiln_registry::Platform {
            os: platform.os.clone(),
            architecture: platform.arch.clone(),
            variant: Some(platform.variant.clone()).filter(|v| !v.is_empty()),
        };
        let image = self.image_for(reference, &platform, true)?;
        let canonical = Reference::parse(reference)
            .map(|r| r.to_string())
            .unwrap_or_else(|_| reference.to_string());
        Ok(ResolvedImage {
            reference: canonical,
            manifest_digest: image.manifest_digest.to_string(),
            config: image.config.clone(),
        })
    }
}
