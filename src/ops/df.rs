//! `df`: what the archives take on disk, per image and in all, and what the same archives would
//! take as full copies (each `.ref` as the bytes of its image's blobs).

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;

use crate::name::Format;
use crate::store::Store;

/// The bytes the archives take.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Usage {
    /// Bytes on disk: every archive file, and every blob of the layer stores once.
    pub on_disk: u64,
    /// What the same archives would take as full copies.
    pub as_full_copies: u64,
    pub images: Vec<ImageUsage>,
}

/// The bytes one image's archives take.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct ImageUsage {
    pub image: String,
    /// How many archives it has.
    pub archives: usize,
    /// Its archive files and the blobs its `.ref` archives use (each once).
    pub on_disk: u64,
    /// The bytes only this image's archives use (its files, and blobs no other image's `.ref`
    /// uses).
    pub unique: u64,
}

/// Measures the archives of `images` (every image when empty) in `store`.
pub fn usage(store: &Store, images: &[String]) -> Usage {
    let wanted = |image: &str| images.is_empty() || images.iter().any(|i| i == image);
    let mut per_image: BTreeMap<String, ImageUsage> = BTreeMap::new();
    // Which images' `.ref` archives use each blob, and its size.
    let mut blob_users: HashMap<String, (u64, HashSet<String>)> = HashMap::new();
    let mut usage = Usage::default();
    for layer_store in store.layer_stores() {
        let needs = layer_store.needs();
        for a in &layer_store.refs {
            let Some(n) = needs.get(&a.path) else {
                continue;
            };
            for need in n.blobs.iter().filter(|b| b.present) {
                blob_users
                    .entry(need.descriptor.digest.clone())
                    .or_insert_with(|| (need.descriptor.size, HashSet::new()))
                    .1
                    .insert(a.name.image.clone());
            }
        }
        if images.is_empty() {
            usage.on_disk += layer_store
                .layout
                .blobs()
                .unwrap_or_default()
                .iter()
                .map(|(_, s)| s)
                .sum::<u64>();
        }
    }
    for a in store.all().iter().filter(|a| a.name.format.is_known()) {
        if !wanted(&a.name.image) {
            continue;
        }
        let entry = per_image
            .entry(a.name.image.clone())
            .or_insert_with(|| ImageUsage {
                image: a.name.image.clone(),
                ..ImageUsage::default()
            });
        entry.archives += 1;
        let file_size = match a.name.format {
            Format::Ref => std::fs::symlink_metadata(&a.path).map_or(0, |m| m.len()),
            _ => a.size,
        };
        entry.on_disk += file_size;
        entry.unique += file_size;
        usage.on_disk += file_size;
        // A `.ref`'s size is its image's bytes in the store (each blob once): its full copy.
        usage.as_full_copies += a.size;
    }
    // Blobs count with the files of every image that uses them (each once per image).
    let mut images_blobs = 0u64;
    for (size, users) in blob_users.values() {
        let mut counted = false;
        for image in users {
            if let Some(entry) = per_image.get_mut(image) {
                entry.on_disk += size;
                if users.len() == 1 {
                    entry.unique += size;
                }
                counted = true;
            }
        }
        if counted {
            images_blobs += size;
        }
    }
    if !images.is_empty() {
        usage.on_disk += images_blobs;
    }
    usage.images = per_image.into_values().collect();
    usage
}
