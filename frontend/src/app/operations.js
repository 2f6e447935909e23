// Every GraphQL document the app sends, in one place.

export const PROJECT = `query AppProject {
  project {
    id name title labelConfig showSkipButton allowDeleteCompletions enableEmptyCompletion
    instruction showInstruction
    taskCount labeledTaskCount completionCount predictionCount
  }
}`;

export const COUNTERS = `query AppCounters {
  project { taskCount labeledTaskCount completionCount predictionCount }
}`;

const COUNTER_FIELDS = "taskCount labeledTaskCount completionCount predictionCount";

export const NEXT_TASK = `query AppNextTask {
  project { ${COUNTER_FIELDS} nextTask { id lsSourceJson } }
}`;

/** Store a completion and read the counters and next task in the same round trip. */
export const SUBMIT_AND_NEXT = `mutation AppSubmitAndNext($taskId: Int!, $completion: JSON!, $wasCancelled: Boolean) {
  createCompletion(taskId: $taskId, completion: $completion, wasCancelled: $wasCancelled) {
    id
    project { ${COUNTER_FIELDS} nextTask { id lsSourceJson } }
  }
}`;

export const TASK = `query AppTask($id: Int!) {
  task(id: $id) { id lsJson }
}`;

export const TASK_PAGE = `query AppTaskPage($page: Int!, $pageSize: Int!, $orderBy: TaskOrder!) {
  project {
    taskCount labeledTaskCount completionCount predictionCount
    taskPage(page: $page, pageSize: $pageSize, orderBy: $orderBy) {
      total
      tasks { id data completedAt totalCompletions cancelledCompletions totalPredictions }
    }
  }
}`;

export const CREATE_COMPLETION = `mutation AppCreateCompletion($taskId: Int!, $completion: JSON!, $wasCancelled: Boolean) {
  createCompletion(taskId: $taskId, completion: $completion, wasCancelled: $wasCancelled) { id }
}`;

export const UPDATE_COMPLETION = `mutation AppUpdateCompletion($id: Int!, $completion: JSON!) {
  updateCompletion(id: $id, completion: $completion) { id }
}`;

export const DELETE_COMPLETION = `mutation AppDeleteCompletion($id: Int!) {
  deleteCompletion(id: $id)
}`;

export const IMPORT_FILES = `mutation AppImportFiles($files: [Upload!]) {
  importTasks(files: $files) { taskCount completionCount predictionCount duration }
}`;

export const IMPORT_TASKS = `mutation AppImportTasks($tasks: JSON) {
  importTasks(tasks: $tasks) { taskCount completionCount predictionCount duration }
}`;

export const SET_LABEL_CONFIG = `mutation AppSetLabelConfig($labelConfig: String!) {
  setLabelConfig(labelConfig: $labelConfig) { labelConfig }
}`;

/** Whether a task is still in the label stream (NOT_FOUND once deleted). */
export const TASK_STATE = `query AppTaskState($id: Int!) {
  task(id: $id) { id isLabeled }
}`;

// Subscriptions (live.js): the counters after each change, and which tasks changed how.
export const PROJECT_CHANGED = `subscription AppProjectChanged {
  projectChanged { reason ${COUNTER_FIELDS} }
}`;

export const TASK_CHANGED = `subscription AppTaskChanged {
  taskChanged { kind taskIds count }
}`;
