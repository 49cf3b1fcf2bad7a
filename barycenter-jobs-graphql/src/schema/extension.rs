//! [`JobsExtension`]: what the jobs API needs of every request, wherever its objects are
//! served (the admin service's schema, or a host schema they are merged into).

use std::sync::Arc;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextPrepareRequest,
};
use async_graphql::parser::types::OperationType;
use async_graphql::{Request, ServerError, ServerResult};

use super::Loads;

/// The most mutations one request may run, by default (see [`JobsExtension`]).
pub const DEFAULT_MAX_MUTATIONS: usize = 10;

/// The schema extension of the jobs API: gives every request its own set of store reads (so
/// the store-backed fields cost a bounded number of statements however many aliases name
/// them) and refuses a request that would run more than [`DEFAULT_MAX_MUTATIONS`] mutations
/// (of any object of the schema: a host's own mutations count too) before anything runs.
/// [`AdminSchema`](super::AdminSchema) has it; a host schema that merges
/// [`QueryRoot`](super::QueryRoot) / [`MutationRoot`](super::MutationRoot) adds it with
/// `.extension(JobsExtension::default())`.
#[derive(Debug, Clone, Copy)]
pub struct JobsExtension {
    max_mutations: usize,
}

impl Default for JobsExtension {
    fn default() -> Self {
        Self {
            max_mutations: DEFAULT_MAX_MUTATIONS,
        }
    }
}

impl JobsExtension {
    /// At most `n` mutations per request instead.
    pub fn max_mutations(n: usize) -> Self {
        Self { max_mutations: n }
    }
}

impl ExtensionFactory for JobsExtension {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(*self)
    }
}

#[async_graphql::async_trait::async_trait]
impl Extension for JobsExtension {
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        mut request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        let mutations = mutations_in(&mut request);
        if mutations > self.max_mutations {
            return Err(ServerError::new(
                format!(
                    "request runs {mutations} mutations, more than the limit of {}",
                    self.max_mutations
                ),
                None,
            ));
        }
        // Unless the caller put one in already (the admin service shares one across the
        // operations of a batch).
        if !request.data.contains_key(&std::any::TypeId::of::<Loads>()) {
            request.data.insert(Loads::default());
        }
        next.run(ctx, request).await
    }
}

/// The top-level fields of the mutation a request runs (every alias and fragment counts;
/// `@skip`/`@include` are not evaluated, so it may count more, never fewer). A document that
/// does not parse counts nothing: execution refuses it.
pub(crate) fn mutations_in(request: &mut Request) -> usize {
    use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
    fn count(doc: &ExecutableDocument, set: &SelectionSet, depth: usize) -> usize {
        // Fragments that spread each other are refused by validation; stop early anyway.
        if depth > 32 {
            return 0;
        }
        set.items
            .iter()
            .map(|item| match &item.node {
                Selection::Field(_) => 1,
                Selection::FragmentSpread(spread) => doc
                    .fragments
                    .get(&spread.node.fragment_name.node)
                    .map_or(0, |f| count(doc, &f.node.selection_set.node, depth + 1)),
                Selection::InlineFragment(inline) => {
                    count(doc, &inline.node.selection_set.node, depth + 1)
                }
            })
            .sum()
    }
    let wanted = request.operation_name.clone();
    let Ok(doc) = request.parsed_query() else {
        return 0;
    };
    doc.operations
        .iter()
        .filter(|(name, op)| {
            op.node.ty == OperationType::Mutation
                && wanted
                    .as_deref()
                    .is_none_or(|w| name.is_some_and(|n| n.as_str() == w))
        })
        .map(|(_, op)| count(doc, &op.node.selection_set.node, 0))
        .sum()
}
