// How a job's text reaches a model: the generation prompt wrapped in the
// model's own chat template with thinking switched off (Qwen3's documented
// `enable_thinking` switch), a thinking block stripped from the output when a
// model writes one anyway, and rerank input laid out in the reranker's own
// template with the job's task as its instruction. Pure functions; the engine
// (llamaEngine.ts) tokenizes and runs them.
import { Template } from '@huggingface/jinja';

/** Stands for the user's prompt while the template renders; the prompt itself never goes through Jinja. */
export const PROMPT_MARK = 'STEADYTEXTPROMPTMARK9c41e7';

export interface ChatPromptParts {
  /** Template text before the prompt (special tokens written out). */
  before: string;
  /** Template text after the prompt: the end of the user turn and the opened assistant turn. */
  after: string;
}

/**
 * Renders `template` for one user turn and the generation prompt, as
 * `apply_chat_template(messages, add_generation_prompt=True, enable_thinking=False)`
 * does. Returns the text around the prompt, so that the engine can tokenize
 * the template with special tokens and the prompt without: a prompt that
 * contains `<|im_end|>` stays text and cannot close the turn.
 */
export function renderChatPrompt(template: string, specials: { bos?: string; eos?: string } = {}): ChatPromptParts {
  const rendered = new Template(template).render({
    messages: [{ role: 'user', content: PROMPT_MARK }],
    add_generation_prompt: true,
    enable_thinking: false,
    bos_token: specials.bos ?? '',
    eos_token: specials.eos ?? '',
  });
  return splitAtPrompt(rendered);
}

/** The text around the user's prompt in a template rendered with `PROMPT_MARK` as the message (here or by a server). */
export function splitAtPrompt(rendered: string): ChatPromptParts {
  const at = rendered.indexOf(PROMPT_MARK);
  if (at < 0 || rendered.indexOf(PROMPT_MARK, at + 1) >= 0) {
    throw new Error('the chat template does not place the user message exactly once');
  }
  return { before: rendered.slice(0, at), after: rendered.slice(at + PROMPT_MARK.length) };
}

/** Whether a template follows the `<think>...</think>` convention (Qwen3, DeepSeek-R1 and kin). */
export function templateThinks(template: string | undefined): boolean {
  return template !== undefined && template.includes('<think>');
}

export interface SplitThinking {
  /** The text after the thinking block (leading whitespace removed), or all of it when there is none. */
  answer: string;
  /** The thinking block's content, when the output opened with one. */
  thinking?: string;
  /** The output opened a thinking block and never closed it. */
  unterminated: boolean;
}

/** Splits off a thinking block that opens the output (`<think>...</think>`). */
export function splitThinking(text: string): SplitThinking {
  const open = /^\s*<think>/.exec(text);
  if (!open) return { answer: text, unterminated: false };
  const close = text.indexOf('</think>', open[0].length);
  if (close < 0) return { answer: '', thinking: text.slice(open[0].length), unterminated: true };
  return {
    answer: text.slice(close + '</think>'.length).replace(/^\s+/, ''),
    thinking: text.slice(open[0].length, close),
    unterminated: false,
  };
}

/** Qwen3-Reranker's user turn: `<Instruct>: {instruction}\n<Query>: {query}`. */
const INSTRUCT_SLOT = /<Instruct>: [^\n]*\n<Query>: \{query\}/;

export interface RerankLayout {
  /**
   * The ranking template for node-llama-cpp (`{{query}}` / `{{document}}`
   * placeholders), or undefined to use the model's own unchanged.
   */
  template?: `${string}{{query}}${string}{{document}}${string}`;
  /** What goes into the `{{query}}` placeholder for a task and a query. */
  query: (task: string, query: string) => string;
}

/**
 * Lays rerank input out in the model's `chat_template.rerank`. A template in
 * Qwen3-Reranker's layout (`<Instruct>: ...\n<Query>: {query}`) gets the job's
 * task as its instruction: the `{{query}}` slot then holds
 * `<task>\n<Query>: <query>` after the literal `<Instruct>: `. Any other
 * template is used as it is, with a task other than the default in front of
 * the query.
 */
export function rerankLayout(modelTemplate: string | undefined, defaultTask: string): RerankLayout {
  const orTaskInFront = (task: string, query: string) => (task && task !== defaultTask ? `${task}\n${query}` : query);
  if (!modelTemplate || !INSTRUCT_SLOT.test(modelTemplate) || !modelTemplate.includes('{document}')) {
    return { query: orTaskInFront };
  }
  const template = modelTemplate
    .replace(INSTRUCT_SLOT, '<Instruct>: {{query}}')
    .replaceAll('{document}', '{{document}}') as RerankLayout['template'];
  return { template, query: (task, query) => `${task || defaultTask}\n<Query>: ${query}` };
}
